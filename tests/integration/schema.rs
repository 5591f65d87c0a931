//! The tool schema: every constraint refuses what it must.
