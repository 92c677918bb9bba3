"""From-scratch pretraining with document masking, schedules, annealing and checkpoint averaging."""
