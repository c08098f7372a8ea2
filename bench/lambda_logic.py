#!/usr/bin/python3
"""The original Lambda's logic as a reference for bench/run.sh.

What the Lambda this service replaces did for each stream record, written
afresh: read the player's item (GetItem), then write a new item (PutItem)
or update the old one (UpdateItem), one record after another, with boto3.
It is driven here with events of 10 records (the trigger's batch size) of
the same shape and spread as bench/ingest.lua sends to the service, against
the same dynalite, in a table of its own, for a given number of seconds.

    /usr/bin/python3 bench/lambda_logic.py <seconds> [players]

Needs Debian's python3-boto3 and AWS_ENDPOINT_URL_DYNAMODB (Debian 12's
botocore does not read that variable itself, so it is passed explicitly).
Prints "<records/s> <p50 ms per record> <records>", after checking that the
games summed over the table equal the records processed.
"""
import os
import random
import sys
import time
from decimal import Decimal

import boto3


def write_stats(client, table, image):
    """One record: GetItem, then PutItem (new player) or UpdateItem."""
    key = {"player": image["player"]}
    won = 1 if image.get("winner", {}).get("BOOL") else 0
    score = Decimal(image["score"]["N"])
    current = client.get_item(TableName=table, Key=key).get("Item")
    if current is None:
        client.put_item(TableName=table, Item={
            "player": image["player"],
            "games": {"N": "1"},
            "wins": {"N": str(won)},
            "avg_score": {"N": str(score)},
            "win_percent": {"S": f"{won * 100.0:.5}%"},
        })
        return
    games = int(current["games"]["N"]) + 1
    wins = int(current["wins"]["N"]) + won
    avg = (Decimal(current["avg_score"]["N"]) + score) / 2
    client.update_item(
        TableName=table, Key=key,
        UpdateExpression="SET avg_score = :avs, games = games + :one, "
                         "wins = wins + :win, win_percent = :wp",
        ExpressionAttributeValues={
            ":avs": {"N": str(avg.quantize(Decimal("0.01")))},
            ":win": {"N": str(won)},
            ":wp": {"S": f"{wins / games * 100:.5}%"},
            ":one": {"N": "1"},
        })


def handler(client, table, event):
    for record in event["Records"]:
        if "NewImage" in record["dynamodb"]:
            write_stats(client, table, record["dynamodb"]["NewImage"])


def event_of(n, players, counter):
    records = []
    for _ in range(n):
        counter += 1
        records.append({
            "eventID": f"lambda-{counter}",
            "eventName": "INSERT",
            "dynamodb": {"NewImage": {
                "player": {"S": f"p{random.randint(1, players)}"},
                "score": {"N": f"{random.randint(0, 99)}."
                               f"{random.randint(0, 99):02d}"},
                "winner": {"BOOL": random.random() < 0.5},
            }},
        })
    return {"Records": records}, counter


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    players = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    client = boto3.client(
        "dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"))
    table = f"LambdaLogic-{os.getpid()}-{int(time.time())}"
    client.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "player",
                               "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "player", "KeyType": "HASH"}])
    client.get_waiter("table_exists").wait(TableName=table)
    random.seed(20261203)
    counter, latencies = 0, []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        event, counter = event_of(10, players, counter)
        for record in event["Records"]:
            t0 = time.monotonic()
            handler(client, table, {"Records": [record]})
            latencies.append(time.monotonic() - t0)
    elapsed = time.monotonic() - start
    games, scan = 0, {"TableName": table}
    while True:
        page = client.scan(**scan)
        games += sum(int(i["games"]["N"]) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    client.delete_table(TableName=table)
    if games != counter:
        print(f"LAMBDA TOTALS WRONG: games {games}, records {counter}",
              file=sys.stderr)
        sys.exit(1)
    latencies.sort()
    print(f"{counter / elapsed:.0f} {latencies[len(latencies) // 2] * 1000:.2f}"
          f" {counter}")


if __name__ == "__main__":
    main()
