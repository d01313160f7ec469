"""RabbitMQ through pika: topology, confirmed publishing, consuming with ack-after-commit."""
