# Write the shipped embedded sentiment data as "your own" CSV files (string labels, an extra column).
import csv
from runners.tasks.data import load_embedded

splits = load_embedded("embedded-sst2")
words = ("negative", "positive")
for name, rows, count in (("train", splits["train"], 600), ("dev", splits["validation"], 200)):
    with open(f"reviews-{name}.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "review", "sentiment"])
        writer.writerows((f"{name}-{i}", row["sentence"], words[row["label"]]) for i, row in enumerate(rows[:count]))
with open("new-reviews.csv", "w", newline="") as file:
    writer = csv.writer(file)
    writer.writerow(["id", "review"])
    writer.writerows((f"new-{i}", row["sentence"]) for i, row in enumerate(splits["test"][:100]))
