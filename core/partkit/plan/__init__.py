"""Tables from intent: lay out a new table (:mod:`.new`) or edit one in place (:mod:`.resize`)."""
