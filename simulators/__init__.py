"""The outside world in a box: simulators of the national systems the hub talks to."""
