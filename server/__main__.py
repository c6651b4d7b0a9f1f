import sys

from server.cli import main

# Guarded: a child process started with "spawn" (the chat-import parser) imports this module
# again as __mp_main__, and must not start a second server.
if __name__ == "__main__":
    sys.exit(main())
