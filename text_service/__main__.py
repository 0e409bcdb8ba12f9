from text_service.server import main

main()
