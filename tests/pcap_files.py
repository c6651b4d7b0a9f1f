"""The sample captures in tests/data/pcaps (sources and licences in its README) by what they show.

The one place that knows where they are: tests and benchmarks import ``PCAPS`` from here.
Importing this module fails when the folder or one of the captures below is missing, so a
test parametrised over these lists cannot silently collect nothing.
"""
from __future__ import annotations

from pathlib import Path

PCAPS = Path(__file__).resolve().parent / "data" / "pcaps"
BAD = {"not-a-capture.pcap", "tcpdump-empty.pcapng", "truncated-dns-tcp.pcap"}
EXPECTED = frozenset({
    "80211http.pcap", "bigendian.pcap", "curl-enabled-tls13.pcap", "dns-tcp.pcap",
    "dns-udp.pcap", "ftp.pcap", "gre-sample.pcap", "http-post-upload.pcap",
    "http-simple-get.pcap", "ipv6-in-ipv4.pcap", "nflog.pcap", "not-a-capture.pcap",
    "quic33-wireshark.pcap", "sanders-http_espn.pcapng", "sanders-http_ip4and6.pcapng",
    "sanders-icmp_traceroute.pcapng", "sanders-ipv6_fragments.pcapng",
    "sanders-tcp_dupack.pcapng", "smtp-starttls.pcap", "tcpdump-802.1ad_QinQ.pcap",
    "tcpdump-LINKTYPE_RAW_ipv4.pcap", "tcpdump-LINKTYPE_RAW_ipv6.pcap",
    "tcpdump-OSPFv2_Capture_FINAL.pcapng", "tcpdump-dhcp-option-108.pcapng",
    "tcpdump-dns_udp.pcap", "tcpdump-empty.pcapng", "tcpdump-icmpv6.pcap",
    "tcpdump-tcp-handshake-nano.pcap", "tls13.pcap", "truncated-dns-tcp.pcap",
    "twovlan.pcap", "v6-http.pcap",
})
ALL = sorted(p.name for p in PCAPS.glob("*.pcap*"))
GOOD = sorted(name for name in ALL if name not in BAD)

_missing = sorted(EXPECTED - set(ALL))
if _missing:
    raise RuntimeError(f"{len(_missing)} of {len(EXPECTED)} sample captures missing from "
                       f"{PCAPS}: {', '.join(_missing)}")
