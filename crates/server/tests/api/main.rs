//! Integration tests: the real server on a random port, over real HTTP, against a fresh
//! SQLite file and a fresh PostgreSQL database for every test.

mod authorisation;
mod broken_inputs;
mod browser;
mod bundles;
mod concurrency;
mod donor;
mod official_examples;
mod people;
mod portal;
mod rest;
mod search;
mod summary;
