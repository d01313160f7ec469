"""A simulated register system (alcohol permits, road-lane occupation, monuments) on AMQP."""
