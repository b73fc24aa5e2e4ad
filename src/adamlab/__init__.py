"""adamlab: the Adam optimizer family (Kingma & Ba 2014), defined once and run anywhere."""
