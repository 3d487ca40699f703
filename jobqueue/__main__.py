from jobqueue.entry import main

main()
