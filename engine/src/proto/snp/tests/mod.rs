//! Tests of the SNP layer: unit tests of single-instance behaviour, scenario tests of two
//! instances talking through the seeded network simulator, and a decode fuzz property.

mod coalesce;
mod harness;
mod scenarios;
mod unit;
