"""The pure core: values, rules and decisions, with no I/O and time passed in.

Event model and errors; decoding and validation (codec); batching and coalescing; trace ids;
offsets and ordering; reading HubSpot's replies (responses, outcomes); retry and rate-limit
policy; readiness; the records the contract defines; what was last written per id
(last_written, for SKIP_UNCHANGED); and the ports, the small interfaces
the loop needs from the outside world. Imports only the standard library, small pure
libraries and each other (tests/architecture keeps it so).
"""
