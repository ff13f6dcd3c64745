"""Who is asking: users, passwords, sign-in."""
