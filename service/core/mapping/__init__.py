"""Event mapping: how a decoded upstream event becomes an input HubSpot takes.

spec (what a mapping says), document (reading and checking a mapping file's content),
paths (JMESPath field paths), convert and timestamps (typed conversions to HubSpot's text),
apply (one event through a mapping: an Event or a Rejection). Pure.
"""
