print("ocss")
