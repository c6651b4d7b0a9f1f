"""The server: app factory, configuration, Socket.IO wiring, REST and the web console."""
