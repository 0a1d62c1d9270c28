//! XRPC for AT Protocol services: a server and a client on hyper, event
//! streams, auth tokens, and lexicon validation.
