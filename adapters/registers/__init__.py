"""The offices' registers (alcohol permits, road-lane occupation, monuments), reached over AMQP."""
