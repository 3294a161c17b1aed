"""The investigator workbench: labels with undo, actions with a blast radius, the review queue,
ring search; the routers under api/routers call these."""
