"""Validates a hat-gateway configuration file with hat-gateway 0.6.48's own validator
(the main schema, then every device entry against its module's schema, as
hat-gateway's main does) and prints "VALID <devices>"; an invalid file raises."""

import pathlib
import sys

from hat import json
from hat.gateway import common

conf = json.decode_file(pathlib.Path(sys.argv[1]))
json.DefaultSchemaValidator(common.json_schema_repo).validate('hat-gateway://main.yaml', conf)
for device in conf['devices']:
    info = common.import_device_info(device['module'])
    json.DefaultSchemaValidator(info.json_schema_repo).validate(info.json_schema_id, device)
print("VALID", len(conf['devices']))
