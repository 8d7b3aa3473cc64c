"""The server's HTML pages: sign-in, the review inbox and the live campaign pages (templates and static files here)."""
