"""The domains' engines, typed and long-lived: locks, captures, replies and their context,
the ticker, AI providers, leader leases, the bus and presence. Each is built once per
instance from ``container.Core`` and started and stopped by its own cleanup context
(``server/app.py``). Imports run one way: server → handlers → services → store."""
