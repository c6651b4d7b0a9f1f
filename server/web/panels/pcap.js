// Captures: a Wireshark-like workspace for the project's .pcap/.pcapng files — upload with
// progress, the capture list live for every member, and per capture the Summary, Protocols,
// Conversations, Endpoints, I/O, Lengths and Packets views (modules under captures/).
import { mountCaptures } from './captures/workspace.js';

export default { id: 'pcap', title: 'Captures', slot: 'main', mount: mountCaptures };
