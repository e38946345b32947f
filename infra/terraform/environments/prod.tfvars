# terraform apply -var-file=environments/prod.tfvars
# api_keys (and llm_api_key) are secret: export TF_VAR_api_keys=... rather than writing them here.
environment         = "prod"
region              = "eu-west-1"
name_prefix         = "cv-analytics"
lambda_zip_path     = "../../dist/cv-analytics-lambda.zip"
recipient_email     = "you@example.com"
sender_email        = "reports@example.com"
alarm_email         = "you@example.com"
schedule_expression = "cron(0 7 ? * MON *)"

job_request_queue_depth_threshold = 100
