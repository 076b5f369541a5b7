"""The offline demo behind the README's first command."""
