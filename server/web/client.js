// The browser/Node client library (docs/DELIVERY.md). Being written: see issue 13.
export {};
