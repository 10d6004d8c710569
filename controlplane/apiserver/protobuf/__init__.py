"""`application/vnd.kubernetes.protobuf` for the built-in kinds: the wire codec (`wire`,
`scalars`, `schema` with its reader, `encoding`), the message definitions (`meta`, `core`,
`apiextensions`, `reviews`), whole objects, lists, Status and watch frames (`codec`),
content negotiation (`negotiation`) and the HTTP hook (`http`)."""
