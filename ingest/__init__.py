"""Parsers for PCAP, CSV and chat exports, importable without the server.

Empty until the PCAP, tables and chat-import issues land; kept so the layout is in place.
"""
