"""What is sent, and when: schedule, request mix, bodies, keys, load processes."""
