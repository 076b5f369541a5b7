from ghapp.cli.main import main

main()
