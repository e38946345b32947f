# The DynamoDB store's tables (src/cv_analytics/stores/dynamodb_tables.py), on demand.

# Events waiting for their counterpart (query or response). Transient: TTL
# removes the ones whose counterpart never came; readers filter expired items
# themselves because TTL deletion lags by up to days.
resource "aws_dynamodb_table" "events" {
  name         = "${var.name_prefix}-query-events"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "requestId"

  attribute {
    name = "requestId"
    type = "S"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }
}

# One interaction per request id: the pipeline's product. prevent_destroy is
# Terraform's counterpart of the template's DeletionPolicy: Retain.
resource "aws_dynamodb_table" "interactions" {
  name         = "${var.name_prefix}-analytics"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "requestId"

  attribute {
    name = "requestId"
    type = "S"
  }

  attribute {
    name = "timestamp"
    type = "N"
  }

  attribute {
    name = "week"
    type = "S"
  }

  global_secondary_index {
    name            = "week-index"
    hash_key        = "week"
    range_key       = "timestamp"
    projection_type = "ALL"
  }

  lifecycle {
    prevent_destroy = true
  }
}

# Send-once records of the weekly report, one per ISO week and recipient.
resource "aws_dynamodb_table" "reports" {
  name         = "${var.name_prefix}-reports"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "week"
  range_key    = "recipient"

  attribute {
    name = "recipient"
    type = "S"
  }

  attribute {
    name = "week"
    type = "S"
  }

  lifecycle {
    prevent_destroy = true
  }
}

# AI jobs and their idempotency keys (pk job#<id> or idempotency#<key>); three
# sparse indexes list jobs newest first: all, by status, by type. Finished jobs
# and their keys expire through ttl.
resource "aws_dynamodb_table" "jobs" {
  name         = "${var.name_prefix}-jobs"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "created"
    type = "S"
  }

  attribute {
    name = "entity"
    type = "S"
  }

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "status"
    type = "S"
  }

  attribute {
    name = "type"
    type = "S"
  }

  global_secondary_index {
    name            = "entity-created-index"
    hash_key        = "entity"
    range_key       = "created"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "status-created-index"
    hash_key        = "status"
    range_key       = "created"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "type-created-index"
    hash_key        = "type"
    range_key       = "created"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }
}
