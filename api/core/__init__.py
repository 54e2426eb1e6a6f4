"""What every part of the service shares: settings, errors, request bodies, log masking, OpenAPI docs."""
