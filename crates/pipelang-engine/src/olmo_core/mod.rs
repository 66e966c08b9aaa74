//! OLMo-core 3.0: each engine run rendered as a JSON config that `driver.py` (kept here as a
//! real Python file, written beside the configs) turns into OLMo-core's model, optimizer,
//! scheduler, data loader and trainer.

pub mod lr;
