"""The training road: the loop, resume, logging and data-parallel processes."""
