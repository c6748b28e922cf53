"""Pictures of what a config and a model do: the views and masks of a
pipeline (:mod:`.masks`) and masked-image reconstructions
(:mod:`.reconstruction`). Nothing is imported here."""
