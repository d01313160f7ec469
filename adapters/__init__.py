"""One package per external system, each speaking that system's protocol to and from the hub."""
