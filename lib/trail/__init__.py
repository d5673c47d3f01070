"""The trail a plan leaves: the hash-chained audit log and its report, the
snapshots for forensic replay, the events clients follow and the
notifications people get.
"""
