"""AWS infrastructure: the CloudFormation template, bootstrap, the Lambda package.

A package, so its module names (``aws.test_template``) cannot clash with
same-named test modules elsewhere in the suite.
"""
