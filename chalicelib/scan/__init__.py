"""Seed 001's document scan: reading text out of documents (extract),
finding target codes in it (codes), and the manifests that list documents
(manifest). Pure functions over bytes and text: no AWS, no pipeline."""
