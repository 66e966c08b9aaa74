//! pipelang: a checked, executable language for multi-stage pre-training recipes.
