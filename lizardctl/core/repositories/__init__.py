"""Repositories: queries and inserts on a lent session, never a transaction of their own."""
