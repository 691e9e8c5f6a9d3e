print("lineage")
