# The cv-analytics stack, the same resources with the same settings as
# infra/template.yaml (tests/aws/test_terraform.py holds the two together).
# Change both together.

provider "aws" {
  region = var.region

  # Every taggable resource the provider creates gets these.
  default_tags {
    tags = {
      Project     = "CVAnalytics"
      Environment = var.environment
    }
  }
}

module "queues" {
  source = "./modules/queues"

  name_prefix = var.name_prefix
}

module "tables" {
  source = "./modules/tables"

  name_prefix = var.name_prefix
}

module "iam" {
  source = "./modules/iam"

  name_prefix     = var.name_prefix
  queue_arns      = module.queues.arns
  table_arns      = module.tables.arns
  log_group_arns  = module.functions.log_group_arns
  sender_email    = var.sender_email
  sender_identity = var.sender_identity
  recipient_email = var.recipient_email
}

module "functions" {
  source = "./modules/functions"

  name_prefix         = var.name_prefix
  lambda_zip_path     = var.lambda_zip_path
  lambda_s3_bucket    = var.lambda_s3_bucket
  lambda_s3_key       = var.lambda_s3_key
  role_arns           = module.iam.role_arns
  queue_urls          = module.queues.urls
  queue_arns          = module.queues.arns
  table_names         = module.tables.names
  recipient_email     = var.recipient_email
  sender_email        = var.sender_email
  api_keys            = var.api_keys
  llm_url             = var.llm_url
  llm_model           = var.llm_model
  llm_api_key         = var.llm_api_key
  schedule_expression = var.schedule_expression
}

module "api" {
  source = "./modules/api"

  name_prefix            = var.name_prefix
  http_api_function_arn  = module.functions.arns.http_api
  http_api_function_name = module.functions.names.http_api
  analytics_queue_arn    = module.queues.arns.analytics
}

module "monitoring" {
  source = "./modules/monitoring"

  name_prefix                       = var.name_prefix
  alarm_email                       = var.alarm_email
  function_names                    = module.functions.names
  queue_names                       = module.queues.names
  job_request_queue_depth_threshold = var.job_request_queue_depth_threshold
  table_names                       = module.tables.names
  monthly_budget_usd                = var.monthly_budget_usd
}
