"""Comments on tasks: direct writes with their events in the outbox, mentions, and the
thread read together with the review comments the consumer stores."""
