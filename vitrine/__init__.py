"""The `vitrine` command: one entry point dispatching to the trainer's and the server's parts."""
