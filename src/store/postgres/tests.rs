//! Tests of the PostgreSQL backend that need no server.
