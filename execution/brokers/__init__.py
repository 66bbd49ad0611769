"""Brokers behind one interface (:mod:`execution.brokers.base`): paper and IBKR."""
