"""Reconciliation: match internal records against external ones by ordered rules, exclusively, in integer
minor units; results in the lake, ops users' decisions in the database (`rules`, `engine`, `store`,
`service`)."""
