//! Unit tests of the transfer engine.
