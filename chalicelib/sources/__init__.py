"""Reading input: what a file is, how it splits into chunks, and how a chunk
becomes rows. Nothing here talks to AWS; callers hand in bytes or blocks."""
